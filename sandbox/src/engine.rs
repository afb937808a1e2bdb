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
//!   a different wasmtime version or configuration never loads them.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::OnceCell;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter,
};
use wasmtime_wasi::p1::WasiP1Ctx;

use crate::error::SandboxError;
use crate::limits::LimitKind;
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
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            cache_dir: None,
            max_instances: 256,
            max_memory_bytes: 4 << 30,
            max_wasm_stack: 1 << 20,
            epoch_tick: Duration::from_millis(2),
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
}

/// Enforces the per-run memory limit and trips the run when it is hit, so
/// the report names the limit instead of a bare allocation failure.
pub(crate) struct MemoryLimiter {
    pub(crate) max_bytes: u64,
    pub(crate) run: Arc<RunShared>,
}

/// Tables of Rust and C guests hold function pointers; a million is far past
/// any real program and keeps a table-growth bomb cheap.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let desired = desired as u64;
        if desired > self.max_bytes {
            self.run.trip(LimitKind::Memory, desired);
            return Err(wasmtime::Error::msg("memory limit exceeded"));
        }
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

type Pre = InstancePre<StageState>;

/// The engine, linker and caches shared by every run of a process.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    linker: Linker<StageState>,
    modules: Mutex<HashMap<blake3::Hash, Arc<OnceCell<Pre>>>>,
    disk_dir: Option<PathBuf>,
    ticker_stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Runtime {
    pub(crate) fn new(config: &SandboxConfig) -> Result<Runtime, SandboxError> {
        let engine_err = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        let mut pool = PoolingAllocationConfig::default();
        pool.total_core_instances(config.max_instances)
            .total_memories(config.max_instances)
            .total_tables(config.max_instances)
            .total_stacks(config.max_instances)
            .max_memory_size(usize::try_from(config.max_memory_bytes).unwrap_or(usize::MAX))
            .table_elements(MAX_TABLE_ELEMENTS);
        let mut cfg = Config::new();
        cfg.epoch_interruption(true)
            .max_wasm_stack(config.max_wasm_stack)
            // The fiber stack must hold the wasm stack plus host frames.
            .async_stack_size(config.max_wasm_stack + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&cfg).map_err(engine_err)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut StageState| &mut s.wasi)
            .map_err(engine_err)?;
        crate::fastio::shadow(&mut linker).map_err(engine_err)?;

        let disk_dir = config
            .cache_dir
            .as_ref()
            .map(|d| d.join(engine_key(&engine)));
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop, tick) = (engine.clone(), ticker_stop.clone(), config.epoch_tick);
            std::thread::Builder::new()
                .name("wasm-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        engine.increment_epoch();
                    }
                })
                .map_err(|e| SandboxError::Engine(format!("epoch thread: {e}")))?
        };
        Ok(Runtime {
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
            disk_dir,
            ticker_stop,
            ticker: Some(ticker),
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
        let cell = {
            let mut map = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(hash).or_default().clone()
        };
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
        let path = self
            .disk_dir
            .as_ref()
            .map(|d| d.join(format!("{}.cwasm", hash.to_hex())));
        let cached = path.as_deref().and_then(|p| self.deserialize(p));
        let module = match cached {
            Some(m) => m,
            None => {
                let m = Module::new(&self.engine, bytes.as_slice()).map_err(module_err)?;
                if let Some(p) = &path
                    && let Err(e) = store_artifact(p, &m)
                {
                    // The cache is an optimization; a read-only disk must not fail runs.
                    tracing::warn!(path = %p.display(), error = %e, "could not cache compiled module");
                }
                m
            }
        };
        self.linker.instantiate_pre(&module).map_err(module_err)
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, path: &Path) -> Option<Module> {
        if !path.is_file() {
            return None;
        }
        // SAFETY: `Module::deserialize_file` trusts the file to be a wasmtime
        // artifact. Only this module writes into the cache directory, by
        // atomic rename of a fully written `Module::serialize` output, and the
        // directory name pins the engine's compatibility hash; wasmtime
        // additionally checks the artifact header against this engine.
        match unsafe { Module::deserialize_file(&self.engine, path) } {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "ignoring unusable cached module");
                None
            }
        }
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn store_artifact(path: &Path, module: &Module) -> std::io::Result<()> {
    let bytes = module
        .serialize()
        .map_err(|e| std::io::Error::other(format!("{e:#}")))?;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("cache path has no parent"))?;
    std::fs::create_dir_all(dir)?;
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

/// The bytes of a module, borrowed for the process lifetime or owned.
#[derive(Clone)]
pub(crate) enum ModuleBytes {
    Static(&'static [u8], &'static std::sync::OnceLock<blake3::Hash>),
    Owned(Arc<[u8]>, blake3::Hash),
}

impl ModuleBytes {
    pub(crate) fn owned(bytes: Vec<u8>) -> Self {
        let hash = blake3::hash(&bytes);
        ModuleBytes::Owned(bytes.into(), hash)
    }
    fn as_slice(&self) -> &[u8] {
        match self {
            ModuleBytes::Static(b, _) => b,
            ModuleBytes::Owned(b, _) => b,
        }
    }
    fn hash(&self) -> blake3::Hash {
        match self {
            ModuleBytes::Static(b, h) => *h.get_or_init(|| blake3::hash(b)),
            ModuleBytes::Owned(_, h) => *h,
        }
    }
}
